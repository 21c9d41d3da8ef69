-- Spend per month of the window and campaign, with the campaign's owner and kind.
-- Spend without a campaign is channel-wide and is not here.
SELECT
    s.period,
    s.campaign_id,
    c.name AS campaign_name,
    c.kind AS campaign_kind,
    c.owner_id,
    CAST(sum(s.amount) AS DECIMAL(18, 2)) AS spend,
    $as_of AS as_of
FROM spend_facts AS s
JOIN periods AS p ON s.period = p.period
LEFT JOIN campaigns AS c ON c.campaign_id = s.campaign_id
WHERE s.campaign_id IS NOT NULL
GROUP BY s.period, s.campaign_id, c.name, c.kind, c.owner_id
