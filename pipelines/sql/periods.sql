-- The months of the lookback window, oldest first: from $window_start to as_of's month.
SELECT
    to_char(month_start, '%Y-%m') AS period,
    month_start,
    CAST(month_start + INTERVAL '1 month' - INTERVAL '1 day' AS DATE) AS month_end
FROM (
    SELECT unnest(range($window_start, $as_of + INTERVAL '1 day', INTERVAL '1 month')) AS month_start
)
