-- trial_satisfaction: mean score of trial_feedback submitted in M (business-time month of
-- submitted_at), as a ratio: numerator = sum of scores, denominator = number of responses
-- (0/0, null actual, when there are none; WORKED.md §10.8). An account KPI, by the
-- account's owner (accounts.owner_id; feedback of an account missing from `accounts`, or
-- owned by nobody / someone off the roster, counts at company level only). Feedback
-- submitted at or after the cutoff is not known yet. Windowless: final once M has ended.
WITH facts AS (
    SELECT to_char(f.submitted_at, '%Y-%m') AS period, a.owner_id, f.score AS num, 1 AS den
    FROM trial_feedback AS f
    LEFT JOIN accounts AS a ON a.account_id = f.account_id
    WHERE f.submitted_at < $cutoff
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
    -- A KPI without a window is final once the month has ended.
    max(p.month_end) <= $as_of AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
