-- Leads and effective leads per month of the window and channel, company level.
SELECT
    p.period,
    l.channel,
    count(*) AS leads,
    sum(CASE WHEN l.is_effective THEN 1 ELSE 0 END) AS effective_leads,
    CAST(sum(CASE WHEN l.is_effective THEN 1 ELSE 0 END) AS DOUBLE) / count(*) AS lead_quality_rate,
    $as_of AS as_of
FROM lead_facts AS l
JOIN periods AS p ON l.period = p.period
GROUP BY p.period, l.channel
