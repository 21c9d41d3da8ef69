-- The last non-null brand_daily.followers of each business month for the social source
-- of follower_growth_rate (the pipeline parameter $follower_source, kpis.md's default
-- 'linkedin'), over days up to as_of (later days are not known).
-- Months with no non-null value have no row.
WITH known AS (
    SELECT
        to_char(day, '%Y-%m') AS period,
        day,
        followers,
        row_number() OVER (PARTITION BY to_char(day, '%Y-%m') ORDER BY day DESC) AS rn
    FROM brand_daily
    WHERE source = $follower_source AND followers IS NOT NULL AND day <= $as_of
)
SELECT period, day, followers FROM known WHERE rn = 1
