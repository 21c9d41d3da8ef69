-- One row per month, level and entity scored (outputs.md, `scorecard_summary`): the
-- score is the sum of the weighted scores (0 when no KPI is applicable); the row is
-- final when every scored KPI row is. Flags (plans' non-money recognitions) are given
-- at employee level only, on provisional numbers too, when the employee's attainment
-- of the flag's KPI against the flag's own target reaches its threshold (within 1e-9).
WITH scores AS (
    SELECT period, level, entity_id, plan, sum(weighted_score) AS score, bool_and(is_final) AS is_final
    FROM scorecard
    GROUP BY period, level, entity_id, plan
),
flag_attainment AS (
    SELECT a.period, a.entity_id, a.name AS flag, COALESCE(a.attainment, 0.0) AS attainment, a.threshold
    FROM attainments AS a
    JOIN scores AS s
      ON s.period = a.period AND s.level = a.level AND s.entity_id = a.entity_id
    WHERE a.kind = 'flag'
),
flags AS (
    SELECT period, entity_id, array_agg(flag ORDER BY flag) AS flags
    FROM flag_attainment
    WHERE attainment >= threshold - 1e-9
    GROUP BY period, entity_id
)
SELECT
    s.period,
    s.level,
    s.entity_id,
    s.score,
    s.is_final,
    s.plan,
    COALESCE(f.flags, CAST(make_array() AS VARCHAR[])) AS flags,
    $as_of AS as_of
FROM scores AS s
LEFT JOIN flags AS f ON f.period = s.period AND s.level = 'employee' AND f.entity_id = s.entity_id
