-- leads: leads created in M, by the lead's owner (kpis.md, process KPIs). A count: the
-- numerator is the value.
WITH facts AS (
    SELECT period, owner_id, 1 AS n FROM lead_facts
),
by_entity AS (
    SELECT f.period, o.level, o.entity_id, f.n
    FROM facts AS f
    JOIN owner_entities AS o ON o.owner_id = f.owner_id
    UNION ALL
    SELECT period, 'company', 'company', n FROM facts
)
SELECT
    e.period,
    e.level,
    e.entity_id,
    COALESCE(sum(b.n), 0) AS numerator,
    CAST(NULL AS DOUBLE) AS denominator,
    -- A KPI without a window is final once the month has ended.
    max(p.month_end) <= $as_of AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
