-- Spend, effective leads and cost per effective lead per month and channel: a row for
-- each channel with leads or spend in the month. A zero denominator gives a null cost;
-- zero spend over some effective leads costs 0.
WITH spent AS (
    SELECT period, channel, sum(amount) AS spend
    FROM spend_facts
    GROUP BY period, channel
),
effective AS (
    SELECT period, channel, sum(CASE WHEN is_effective THEN 1 ELSE 0 END) AS effective_leads
    FROM lead_facts
    GROUP BY period, channel
)
SELECT
    p.period,
    COALESCE(s.channel, e.channel) AS channel,
    CAST(COALESCE(s.spend, 0) AS DECIMAL(18, 2)) AS spend,
    COALESCE(e.effective_leads, 0) AS effective_leads,
    CASE
        WHEN COALESCE(e.effective_leads, 0) = 0 THEN NULL
        ELSE CAST(COALESCE(s.spend, 0) AS DOUBLE) / e.effective_leads
    END AS cpl,
    $as_of AS as_of
FROM spent AS s
FULL OUTER JOIN effective AS e ON s.period = e.period AND s.channel = e.channel
JOIN periods AS p ON p.period = COALESCE(s.period, e.period)
