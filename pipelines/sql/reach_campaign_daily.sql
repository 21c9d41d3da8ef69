-- Campaign daily counters known at as_of (day-stamped rows after as_of are not known),
-- with the business month of the day, the campaign's kind and its owner. Reach rates
-- (kpis.md, edge cases): a null counter is 0; the campaign's `kind` decides which
-- campaigns count (not its channel); rows of campaigns missing from `campaigns` are
-- left out (inner join). Shared by kpi_webinar_attendance_rate and
-- kpi_whitepaper_download_rate.
SELECT
    to_char(d.day, '%Y-%m') AS period,
    d.day,
    d.campaign_id,
    c.kind,
    c.owner_id,
    COALESCE(d.impressions, 0) AS impressions,
    COALESCE(d.registrations, 0) AS registrations,
    COALESCE(d.attendees, 0) AS attendees,
    COALESCE(d.downloads, 0) AS downloads
FROM campaign_daily AS d
JOIN campaigns AS c ON c.campaign_id = d.campaign_id
WHERE d.day <= $as_of
