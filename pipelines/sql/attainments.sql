-- The attainment of every KPI value against every target a plan in force sets for it
-- (bonus.md, "Scorecard arithmetic"), written once for the scorecard (kind `scored`),
-- the flags (`flag`, employee level) and the kickers (`kicker`, employee or team
-- level by scope):
--
-- * A ratio KPI with numerator and denominator both 0 has nothing to measure: it is
--   not applicable, attainment null.
-- * An applicable KPI without an actual (money spent over no effective lead, no
--   follower count, or no row at this level) is `missing` and attains 0.
-- * Attainment is actual / target when higher is better and target / actual when
--   lower is better (an actual of 0 there reaches the cap), clamped to [0, cap].
WITH targets AS (
    SELECT
        plan, 'scored' AS kind, kpi AS name, kpi, level, target, direction,
        weight, CAST(NULL AS DOUBLE) AS threshold, CAST(NULL AS DOUBLE) AS share
    FROM plan_kpis
    UNION ALL
    SELECT
        k.plan, 'kicker', k.kicker, k.kpi,
        CASE k.scope WHEN 'team' THEN 'team' ELSE 'employee' END,
        k.target, c.direction, CAST(NULL AS DOUBLE), k.threshold, k.share
    FROM plan_kickers AS k
    JOIN kpi_catalogue AS c ON c.kpi = k.kpi
    UNION ALL
    SELECT
        f.plan, 'flag', f.flag, f.kpi, 'employee', f.target, c.direction,
        CAST(NULL AS DOUBLE), f.threshold, CAST(NULL AS DOUBLE)
    FROM plan_flags AS f
    JOIN kpi_catalogue AS c ON c.kpi = f.kpi
),
valued AS (
    SELECT
        e.period,
        e.level,
        e.entity_id,
        p.plan,
        pl.attainment_cap AS cap,
        t.kind,
        t.name,
        t.kpi,
        t.target,
        t.direction,
        t.weight,
        t.threshold,
        t.share,
        v.actual,
        v.numerator,
        v.denominator,
        COALESCE(v.is_final, true) AS is_final,
        -- Counts report no numerator or denominator and are always applicable.
        COALESCE(NOT (v.numerator = 0 AND v.denominator = 0), true) AS applicable
    FROM entities AS e
    JOIN periods AS p ON p.period = e.period
    JOIN plans AS pl ON pl.plan = p.plan
    JOIN targets AS t ON t.plan = p.plan AND t.level = e.level
    LEFT JOIN kpi_values AS v
      ON v.period = e.period AND v.level = e.level AND v.entity_id = e.entity_id AND v.kpi = t.kpi
)
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
FROM valued
