-- Leads known at the cutoff, with the business-time month of their creation, the plan
-- in force then, and whether they are effective under that plan's rule (kpis.md,
-- "Effective lead"). Timestamps carry the business time zone, so to_char and casts to
-- DATE give business-time months and days. Leads created before the window have no
-- period row and are not effective here; no KPI of the window counts them.
SELECT
    l.lead_id,
    l.created_at,
    to_char(l.created_at, '%Y-%m') AS period,
    l.channel,
    l.campaign_id,
    c.owner_id AS campaign_owner_id,
    l.company_tier,
    l.owner_id,
    l.account_id,
    -- An assignment at or after the cutoff has not happened yet.
    CASE WHEN l.assigned_at < $cutoff THEN l.assigned_at END AS assigned_at,
    CASE WHEN l.assigned_at < $cutoff THEN to_char(l.assigned_at, '%Y-%m') END AS assigned_period,
    COALESCE(
        btrim(l.form_positions, ' ') <> ''
        AND l.form_headcount >= 1
        AND l.form_budget > 0
        AND l.company_size >= p.min_company_size
        AND array_has(p.contact_roles, l.contact_role)
        AND array_has(p.industries, l.industry)
        AND (
            p.need_window_days IS NULL
            OR CAST(l.hiring_need_on AS INT)
               >= CAST(CAST(l.created_at AS DATE) AS INT) - p.need_window_days
        ),
        false
    ) AS is_effective
FROM leads AS l
LEFT JOIN periods AS p ON p.period = to_char(l.created_at, '%Y-%m')
LEFT JOIN campaigns AS c ON c.campaign_id = l.campaign_id
WHERE l.created_at < $cutoff
