-- One row per lead whose assignment is known at the cutoff (lead_facts.assigned_at is
-- null when unassigned or assigned at/after the cutoff), with its follow-up facts
-- (kpis.md, process KPIs and "Edge cases, settled"):
--   assigned_period  business-time month of assigned_at ("leads assigned in M", not
--                    the creation month; WORKED.md §10.2);
--   owner_id         the lead's current owner (lead KPIs belong to leads.owner_id);
--   touches_24h      known touches, by anyone, in [assigned_at, assigned_at + 24h];
--   touches_7d       known touches, by anyone, in [assigned_at, assigned_at + 7 days);
--   closed_24h / closed_7d  whether that window has closed (its end <= cutoff).
-- Touches before assigned_at do not count; touches at or after the cutoff are unknown.
-- "N days" between instants is N x 24 hours, hence the hour intervals.
-- Touch counts are reported whether or not the window has closed (the follow-up
-- impact analysis uses touches_24h of open windows too); the KPIs filter on closed_*.
WITH known_touches AS (
    SELECT lead_id, touched_at FROM touches WHERE touched_at < $cutoff
)
SELECT
    f.lead_id,
    f.owner_id,
    f.assigned_at,
    f.assigned_period,
    COALESCE(sum(CASE WHEN t.touched_at <= f.assigned_at + INTERVAL '24 hours' THEN 1 ELSE 0 END), 0) AS touches_24h,
    COALESCE(sum(CASE WHEN t.touched_at < f.assigned_at + INTERVAL '168 hours' THEN 1 ELSE 0 END), 0) AS touches_7d,
    f.assigned_at + INTERVAL '24 hours' <= $cutoff AS closed_24h,
    f.assigned_at + INTERVAL '168 hours' <= $cutoff AS closed_7d
FROM lead_facts AS f
LEFT JOIN known_touches AS t
  ON t.lead_id = f.lead_id
 AND t.touched_at >= f.assigned_at
WHERE f.assigned_at IS NOT NULL
GROUP BY f.lead_id, f.owner_id, f.assigned_at, f.assigned_period
