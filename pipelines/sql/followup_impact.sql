-- followup_impact: 90-day conversion of the effective leads created in M, split by
-- whether they were touched within 24 hours of assignment: assigned (known at the
-- cutoff) with a known touch, by anyone, in [assigned_at, assigned_at + 24h]
-- (followup_assignments.touches_24h), whether or not that window has closed. Unassigned
-- leads, and leads assigned at/after the cutoff, are in the rest (false). Conversion is
-- conversion_leads_90d's (known payments so far). Both rows, true and false, are present
-- for every month of the window; conversion_rate is null over 0 effective leads.
-- is_final follows the 90-day conversion's rule: M's end + 90 days has closed.
WITH facts AS (
    SELECT
        c.period,
        COALESCE(a.touches_24h >= 1, false) AS touched_within_24h,
        CASE WHEN c.converted_90d THEN 1 ELSE 0 END AS converted
    FROM conversion_leads_90d AS c
    LEFT JOIN followup_assignments AS a ON a.lead_id = c.lead_id
    WHERE c.is_effective
),
grid AS (
    SELECT p.period, p.next_month_start_at, t.touched_within_24h
    FROM periods AS p
    CROSS JOIN (VALUES (true), (false)) AS t(touched_within_24h)
)
SELECT
    g.period,
    g.touched_within_24h,
    CAST(count(f.period) AS BIGINT) AS effective_leads,
    CAST(COALESCE(sum(f.converted), 0) AS BIGINT) AS converted_90d,
    CASE WHEN count(f.period) > 0
        THEN CAST(COALESCE(sum(f.converted), 0) AS DOUBLE) / CAST(count(f.period) AS DOUBLE)
    END AS conversion_rate,
    max(g.next_month_start_at) + INTERVAL '2160 hours' <= $cutoff AS is_final,
    $as_of AS as_of
FROM grid AS g
LEFT JOIN facts AS f
  ON f.period = g.period
 AND f.touched_within_24h = g.touched_within_24h
GROUP BY g.period, g.touched_within_24h
