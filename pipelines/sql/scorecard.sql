-- The scorecard (bonus.md, "Scorecard arithmetic"; outputs.md, `scorecard`): for every
-- month of the window that has a plan in force, every entity of `entities` and every
-- KPI the plan scores at that entity's level.
--
-- * A ratio KPI with numerator and denominator both 0 has nothing to measure: it is
--   not applicable (attainment null, weight used 0), and the other KPIs' weights are
--   scaled up to sum to 1.
-- * An applicable KPI without an actual (money spent over no effective lead, no
--   follower count, or no row at this level) is `missing` and attains 0.
-- * Attainment is actual / target when higher is better and target / actual when
--   lower is better (an actual of 0 there reaches the cap), clamped to [0, cap].
WITH scored AS (
    SELECT
        e.period,
        e.level,
        e.entity_id,
        pk.kpi,
        v.actual,
        v.numerator,
        v.denominator,
        pk.target,
        pk.direction,
        pk.weight AS plan_weight,
        p.plan,
        pl.attainment_cap AS cap,
        COALESCE(v.is_final, true) AS is_final,
        -- Counts report no numerator or denominator and are always applicable.
        COALESCE(NOT (v.numerator = 0 AND v.denominator = 0), true) AS applicable
    FROM entities AS e
    JOIN periods AS p ON p.period = e.period
    JOIN plans AS pl ON pl.plan = p.plan
    JOIN plan_kpis AS pk ON pk.plan = p.plan AND pk.level = e.level
    LEFT JOIN kpi_values AS v
      ON v.period = e.period AND v.level = e.level AND v.entity_id = e.entity_id AND v.kpi = pk.kpi
),
attained AS (
    SELECT
        *,
        applicable AND actual IS NULL AS missing,
        CASE
            WHEN NOT applicable THEN CAST(NULL AS DOUBLE)
            WHEN actual IS NULL THEN 0.0
            WHEN direction = 'lower' AND actual = 0 THEN cap
            WHEN direction = 'lower' THEN least(greatest(target / actual, 0.0), cap)
            ELSE least(greatest(actual / target, 0.0), cap)
        END AS attainment
    FROM scored
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
