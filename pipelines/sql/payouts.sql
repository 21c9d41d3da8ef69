-- What every scored employee earns for each month of the window under the plan in
-- force (bonus.md, "Bonus ledger"): the `base` from the payout curve at the score of
-- the level that scores the employee's role, and one `kicker:<name>` per kicker of the
-- plan, each prorated by the days the employee was active in the month. Money is
-- computed in whole cents with integer arithmetic, so it is exact: the curve's
-- multiplier (a double) is rounded half away from zero to 6 places, then
-- target × multiplier × d / n is rounded once, half away from zero, to 2 places.
-- Names and pay: this view feeds the bonus ledger only, never a BI output.
WITH scored AS (
    -- Employees scored in the month: active on at least one day, under a plan.
    SELECT
        p.period,
        p.plan,
        p.month_start,
        p.month_end,
        e.employee_id,
        e.name AS employee_name,
        e.team,
        e.role,
        e.currency,
        e.monthly_bonus_target,
        CAST(e.monthly_bonus_target * 100 AS BIGINT) AS target_cents,
        CAST(least(COALESCE(e.active_to, p.month_end), p.month_end) AS INT)
            - CAST(greatest(e.active_from, p.month_start) AS INT) + 1 AS active_days,
        CAST(p.month_end AS INT) - CAST(p.month_start AS INT) + 1 AS month_days
    FROM periods AS p
    JOIN employees AS e
      ON e.active_from <= p.month_end
     AND (e.active_to IS NULL OR e.active_to >= p.month_start)
    WHERE p.plan IS NOT NULL
),
scores AS (
    -- The score that pays: the employee's own, the team's or the company's, by role.
    SELECT s.*, r.level, COALESCE(ss.score, 0.0) AS score
    FROM scored AS s
    JOIN plan_roles AS r ON r.plan = s.plan AND r.role = s.role
    LEFT JOIN scorecard_summary AS ss
      ON ss.period = s.period
     AND ss.level = r.level
     AND ss.entity_id = CASE r.level WHEN 'employee' THEN s.employee_id WHEN 'team' THEN s.team ELSE 'company' END
),
curve AS (
    SELECT
        plan,
        point,
        score,
        multiplier,
        lead(score) OVER (PARTITION BY plan ORDER BY point) AS next_score,
        lead(multiplier) OVER (PARTITION BY plan ORDER BY point) AS next_multiplier,
        min(point) OVER (PARTITION BY plan) AS first_point
    FROM plan_curve
),
base AS (
    -- Straight lines between the curve's points, flat beyond its ends.
    SELECT
        s.*,
        CAST(round(
            CASE
                WHEN s.score < c.score OR c.next_score IS NULL THEN c.multiplier
                ELSE c.multiplier
                    + (s.score - c.score) / (c.next_score - c.score) * (c.next_multiplier - c.multiplier)
            END * 1000000
        ) AS BIGINT) AS multiplier_micros
    FROM scores AS s
    JOIN curve AS c
      ON c.plan = s.plan
     AND (
        (s.score >= c.score AND (c.next_score IS NULL OR s.score < c.next_score))
        OR (c.point = c.first_point AND s.score < c.score)
     )
),
kickers AS (
    -- A kicker is earned when the attainment of its KPI, by the employee or by the
    -- team, against the kicker's own target reaches its threshold (within 1e-9).
    SELECT
        s.*,
        a.name AS kicker,
        CASE a.level WHEN 'team' THEN 'team' ELSE 'individual' END AS scope,
        COALESCE(a.attainment, 0.0) AS attainment,
        a.threshold,
        CAST(round(a.share * 1000000) AS BIGINT) AS share_micros
    FROM scores AS s
    JOIN attainments AS a
      ON a.kind = 'kicker'
     AND a.period = s.period
     AND a.plan = s.plan
     AND a.entity_id = CASE a.level WHEN 'team' THEN s.team ELSE s.employee_id END
),
components AS (
    SELECT
        period, plan, employee_id, employee_name, team, role, level, currency,
        monthly_bonus_target, target_cents, active_days, month_days,
        'base' AS component,
        concat('curve(score of ', level, ')') AS rule,
        score AS basis,
        multiplier_micros AS micros
    FROM base
    UNION ALL
    SELECT
        period, plan, employee_id, employee_name, team, role, level, currency,
        monthly_bonus_target, target_cents, active_days, month_days,
        concat('kicker:', kicker) AS component,
        concat(scope, ' attainment >= ', CAST(threshold AS VARCHAR)) AS rule,
        attainment AS basis,
        CASE WHEN attainment >= threshold - 1e-9 THEN share_micros ELSE 0 END AS micros
    FROM kickers
)
SELECT
    period,
    employee_id,
    employee_name,
    team,
    role,
    level,
    plan,
    component,
    rule,
    basis,
    CAST(micros AS DOUBLE) / 1000000 AS multiplier,
    CAST(active_days AS DOUBLE) / month_days AS proration,
    CAST(active_days AS BIGINT) AS active_days,
    CAST(month_days AS BIGINT) AS month_days,
    monthly_bonus_target,
    -- Whole cents, rounded half up (amounts are never negative), then exact decimals.
    CAST(
        CAST((2 * target_cents * micros * active_days + month_days * 1000000)
             / (2 * month_days * 1000000) AS DECIMAL(20, 0))
        / CAST(100 AS DECIMAL(20, 0))
        AS DECIMAL(18, 2)
    ) AS amount,
    currency
FROM components
