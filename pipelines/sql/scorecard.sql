-- The scorecard (bonus.md, "Scorecard arithmetic"; outputs.md, `scorecard`): for every
-- month of the window that has a plan in force, every entity of `entities` and every
-- KPI the plan scores at that entity's level.
--
-- Attainment, applicability and `missing` come from `attainments`. A KPI that is not
-- applicable has weight used 0, and the other KPIs' weights are scaled up to sum to 1.
WITH attained AS (
    SELECT
        period, level, entity_id, kpi, actual, numerator, denominator, target, direction,
        weight AS plan_weight, plan, cap, is_final, applicable, missing, attainment
    FROM attainments
    WHERE kind = 'scored'
),
weighted AS (
    SELECT
        *,
        CASE
            WHEN applicable
            THEN plan_weight / sum(CASE WHEN applicable THEN plan_weight ELSE 0.0 END)
                OVER (PARTITION BY period, level, entity_id)
            ELSE 0.0
        END AS weight
    FROM attained
)
SELECT
    period,
    level,
    entity_id,
    kpi,
    actual,
    numerator,
    denominator,
    target,
    direction,
    attainment,
    plan_weight,
    weight,
    CASE WHEN applicable THEN weight * attainment ELSE 0.0 END AS weighted_score,
    applicable,
    missing,
    is_final,
    plan,
    $as_of AS as_of
FROM weighted
