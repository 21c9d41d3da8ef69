-- lead_to_customer_rate_90d: effective leads created in M whose account's first paid
-- invoice is paid in [created_at, created_at + 90 days] (conversion_leads_90d), over
-- effective leads created in M, by the lead's owner. Payments after the cutoff are
-- unknown, so open windows count what is known so far. Final when M's end (its last
-- instant) + 90 days has closed.
WITH facts AS (
    SELECT period, owner_id, CASE WHEN converted_90d THEN 1 ELSE 0 END AS num, 1 AS den
    FROM conversion_leads_90d
    WHERE is_effective
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
    max(p.next_month_start_at) + INTERVAL '2160 hours' <= $cutoff AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
