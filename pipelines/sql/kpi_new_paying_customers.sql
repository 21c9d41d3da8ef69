-- new_paying_customers: accounts whose first paid invoice (customer_first_paid) falls
-- in M (business-time month of paid_at), by the account's owner; accounts without an
-- owner, owned by someone not on the roster, or missing from `accounts` count at
-- company level only. A count: the numerator is the value. Windowless: final once
-- the month has ended.
WITH facts AS (
    SELECT period, owner_id, 1 AS n FROM customer_first_paid
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
