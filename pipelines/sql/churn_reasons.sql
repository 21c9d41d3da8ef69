-- churn_reasons: company-wide trial_feedback churn reasons per business month of
-- submitted_at: responses giving each reason, and its share of the month's responses
-- that give a reason (responses without a reason count in neither). Feedback submitted
-- at or after the cutoff is not known yet. One row per reason that occurs in M; months
-- of the window only.
WITH by_reason AS (
    SELECT
        to_char(f.submitted_at, '%Y-%m') AS period,
        f.churn_reason,
        CAST(count(*) AS BIGINT) AS responses
    FROM trial_feedback AS f
    WHERE f.submitted_at < $cutoff
      AND f.churn_reason IS NOT NULL
    GROUP BY to_char(f.submitted_at, '%Y-%m'), f.churn_reason
)
SELECT
    r.period,
    r.churn_reason,
    r.responses,
    CAST(r.responses AS DOUBLE)
        / CAST(sum(r.responses) OVER (PARTITION BY r.period) AS DOUBLE) AS share,
    $as_of AS as_of
FROM by_reason AS r
JOIN periods AS p ON p.period = r.period
