-- One row per lead known at the cutoff, with whether it converted within 90 days:
-- its account_id's first paid invoice (customer_first_paid) is paid in
-- [created_at, created_at + 90 x 24h], both ends included. A lead whose account first
-- paid before the lead was created is not a conversion; a lead without an account
-- never converts. Carries period (creation month), owner_id, channel and is_effective
-- from lead_facts; the 90-day KPI and the analysis outputs take the effective ones.
--   closed_90d  whether the lead's own 90-day window has closed (its end <= cutoff)
SELECT
    f.lead_id,
    f.period,
    f.owner_id,
    f.channel,
    f.campaign_id,
    f.account_id,
    f.created_at,
    f.is_effective,
    c.first_paid_at,
    COALESCE(
        c.first_paid_at >= f.created_at
        AND c.first_paid_at <= f.created_at + INTERVAL '2160 hours',
        false
    ) AS converted_90d,
    f.created_at + INTERVAL '2160 hours' <= $cutoff AS closed_90d
FROM lead_facts AS f
LEFT JOIN customer_first_paid AS c ON c.account_id = f.account_id
