-- Leads known at the cutoff, with the business-time month of their creation and
-- whether they are effective under the default rule of kpis.md. Timestamps carry the
-- business time zone, so to_char gives the month in business time.
SELECT
    lead_id,
    channel,
    campaign_id,
    owner_id,
    created_at,
    to_char(created_at, '%Y-%m') AS period,
    COALESCE(
        btrim(form_positions, ' ') <> ''
        AND form_headcount >= 1
        AND form_budget > 0
        AND company_size >= $min_company_size
        AND contact_role IN ('hr_head')
        AND industry IN ('internet', 'tech'),
        false
    ) AS is_effective
FROM leads
WHERE created_at < $cutoff
