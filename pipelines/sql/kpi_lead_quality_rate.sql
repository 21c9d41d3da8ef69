-- lead_quality_rate: effective leads created in M over leads created in M, by the
-- lead's owner. A ratio: kpi_values divides, and gives null over 0.
WITH facts AS (
    SELECT period, owner_id, CASE WHEN is_effective THEN 1 ELSE 0 END AS num, 1 AS den
    FROM lead_facts
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
    max(p.month_end) <= $as_of AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
