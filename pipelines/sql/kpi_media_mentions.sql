-- media_mentions: sum of brand_daily.mentions of source exactly 'media' (open values do
-- not fold case: 'Media' is another source) over the business days of M, company level
-- only. A null mentions counter is 0; day rows after as_of are not known. A count: the
-- numerator is the value, 0 when nothing happened.
WITH facts AS (
    SELECT to_char(day, '%Y-%m') AS period, COALESCE(mentions, 0) AS n
    FROM brand_daily
    WHERE source = 'media' AND day <= $as_of
)
SELECT
    p.period,
    'company' AS level,
    'company' AS entity_id,
    COALESCE(sum(f.n), 0) AS numerator,
    CAST(NULL AS DOUBLE) AS denominator,
    -- A KPI without a window is final once the month has ended.
    max(p.month_end) <= $as_of AS is_final
FROM periods AS p
LEFT JOIN facts AS f ON f.period = p.period
GROUP BY p.period
