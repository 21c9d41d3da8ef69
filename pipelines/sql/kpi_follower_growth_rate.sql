-- follower_growth_rate: (last followers of M - last followers of M-1) / last followers of
-- M-1, for the social source of brand_last_followers ($follower_source), company level only.
-- Readings (WORKED.md §10.5): M-1 is strictly the previous calendar month (no carrying
-- back to an older month); when either month has no value, numerator and denominator
-- are both null (no value at all); with 0 in M-1 they are reported (x/0) and kpi_values
-- gives a null actual.
WITH pairs AS (
    SELECT
        p.period,
        p.month_end,
        cur.followers AS cur_followers,
        prev.followers AS prev_followers
    FROM periods AS p
    LEFT JOIN brand_last_followers AS cur ON cur.period = p.period
    LEFT JOIN brand_last_followers AS prev
      ON prev.period = to_char(p.month_start - INTERVAL '1 day', '%Y-%m')
)
SELECT
    period,
    'company' AS level,
    'company' AS entity_id,
    CASE WHEN cur_followers IS NOT NULL AND prev_followers IS NOT NULL
         THEN cur_followers - prev_followers END AS numerator,
    CASE WHEN cur_followers IS NOT NULL AND prev_followers IS NOT NULL
         THEN prev_followers END AS denominator,
    -- A KPI without a window is final once the month has ended (M-1 ended before M).
    month_end <= $as_of AS is_final
FROM pairs
