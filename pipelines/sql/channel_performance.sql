-- channel_performance: per business month of the window and channel, the leads created
-- in M (by leads.channel), the effective ones, lead_quality_rate (effective / leads, null
-- with no lead), spend of M (by spend.channel and its business day; rows after as_of are
-- not known), cpl (spend / effective leads: null with no effective lead, 0 with effective
-- leads and no spend) and lead_to_customer_rate_90d (effective leads converted within 90
-- days, conversion_leads_90d, over effective leads; null with none). Company level.
-- One row per channel with leads or a spend row in M; a 0.00 spend row counts as spend
-- (WORKED.md §10 reading 14). is_final follows the 90-day conversion's rule: M's end
-- (its last instant) + 90 days has closed.
WITH facts AS (
    SELECT
        period,
        channel,
        1 AS lead,
        CASE WHEN is_effective THEN 1 ELSE 0 END AS effective,
        CASE WHEN is_effective AND converted_90d THEN 1 ELSE 0 END AS converted,
        CAST(0 AS DECIMAL(18, 2)) AS amount
    FROM conversion_leads_90d
    UNION ALL
    SELECT
        to_char(day, '%Y-%m') AS period,
        channel,
        0 AS lead,
        0 AS effective,
        0 AS converted,
        CAST(amount AS DECIMAL(18, 2)) AS amount
    FROM spend
    WHERE day <= $as_of
),
by_channel AS (
    SELECT
        period,
        channel,
        CAST(sum(lead) AS BIGINT) AS leads,
        CAST(sum(effective) AS BIGINT) AS effective_leads,
        CAST(sum(converted) AS BIGINT) AS converted_90d,
        CAST(sum(amount) AS DECIMAL(18, 2)) AS spend
    FROM facts
    GROUP BY period, channel
)
SELECT
    b.period,
    b.channel,
    b.leads,
    b.effective_leads,
    CASE WHEN b.leads > 0
        THEN CAST(b.effective_leads AS DOUBLE) / CAST(b.leads AS DOUBLE)
    END AS lead_quality_rate,
    b.spend,
    CASE WHEN b.effective_leads > 0
        THEN CAST(b.spend AS DOUBLE) / CAST(b.effective_leads AS DOUBLE)
    END AS cpl,
    CASE WHEN b.effective_leads > 0
        THEN CAST(b.converted_90d AS DOUBLE) / CAST(b.effective_leads AS DOUBLE)
    END AS lead_to_customer_rate_90d,
    p.next_month_start_at + INTERVAL '2160 hours' <= $cutoff AS is_final,
    $as_of AS as_of
FROM by_channel AS b
JOIN periods AS p ON p.period = b.period
