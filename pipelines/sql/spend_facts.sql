-- Spend known at as_of, with its business-time month.
SELECT
    day,
    to_char(day, '%Y-%m') AS period,
    channel,
    campaign_id,
    amount
FROM spend
WHERE day <= $as_of
