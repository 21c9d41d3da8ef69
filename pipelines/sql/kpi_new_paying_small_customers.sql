-- new_paying_small_customers: as new_paying_customers, for accounts with
-- accounts.company_size from 50 to 200 inclusive. Accounts missing from `accounts`
-- have no known size and are never small. By the account's owner; a count.
-- Windowless: final once the month has ended.
WITH facts AS (
    SELECT period, owner_id, 1 AS n FROM customer_first_paid WHERE is_small
),
by_entity AS (
    SELECT f.period, o.level, o.entity_id, f.n
    FROM facts AS f
    JOIN owner_entities AS o ON o.owner_id = f.owner_id
    UNION ALL
    SELECT period, 'company', 'company', n FROM facts
)
SELECT
    e.period,
    e.level,
    e.entity_id,
    COALESCE(sum(b.n), 0) AS numerator,
    CAST(NULL AS DOUBLE) AS denominator,
    max(p.month_end) <= $as_of AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
