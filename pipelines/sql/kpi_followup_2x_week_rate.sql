-- followup_2x_week_rate: leads assigned in M (business-time month of assigned_at) with
-- at least 2 touches by anyone in [assigned_at, assigned_at + 7 days), over leads
-- assigned in M whose 7 days have closed (assigned_at + 7 x 24h <= cutoff), by the
-- lead's owner. All leads count; the numerator counts only leads of the denominator.
-- Final when M's end + 7 days has closed.
WITH facts AS (
    SELECT
        assigned_period AS period,
        owner_id,
        CASE WHEN touches_7d >= 2 THEN 1 ELSE 0 END AS num,
        1 AS den
    FROM followup_assignments
    WHERE closed_7d
),
by_entity AS (
    SELECT f.period, o.level, o.entity_id, f.num, f.den
    FROM facts AS f
    JOIN owner_entities AS o ON o.owner_id = f.owner_id
    UNION ALL
    SELECT period, 'company', 'company', num, den FROM facts
)
SELECT
    e.period,
    e.level,
    e.entity_id,
    COALESCE(sum(b.num), 0) AS numerator,
    COALESCE(sum(b.den), 0) AS denominator,
    max(p.next_month_start_at) + INTERVAL '168 hours' <= $cutoff AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
