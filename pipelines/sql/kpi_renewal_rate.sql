-- renewal_rate: paid core subscriptions with end_on in M for which the same account has
-- another paid subscription (a different subscription_id) of the same product starting
-- in [end_on - 30 days, end_on + 30 days] (calendar days, both ends included), over paid
-- core subscriptions with end_on in M; by the account's owner (accounts.owner_id; an
-- account missing from `accounts`, or owned by nobody / someone off the roster, counts
-- at company level only). Readings (kpis.md "Edge cases, settled", WORKED.md §10.11):
-- the renewal counts even if it starts after as_of or is cancelled later; terms
-- cancelled early stay in the denominator; open-ended terms (no end_on) never enter.
-- Subscription dates are contract terms and are used as they are. Final when M's last
-- day + 30 days is on or before as_of.
WITH ending AS (
    SELECT s.subscription_id, s.account_id, s.product, s.end_on, a.owner_id
    FROM subscriptions AS s
    LEFT JOIN accounts AS a ON a.account_id = s.account_id
    WHERE s.kind = 'paid' AND s.product_kind = 'core' AND s.end_on IS NOT NULL
),
renewed AS (
    SELECT DISTINCT x.subscription_id
    FROM ending AS x
    JOIN subscriptions AS r
      ON r.account_id = x.account_id
     AND r.product = x.product
    WHERE r.kind = 'paid'
      AND r.subscription_id <> x.subscription_id
      AND CAST(r.start_on AS INT) >= CAST(x.end_on AS INT) - 30
      AND CAST(r.start_on AS INT) <= CAST(x.end_on AS INT) + 30
),
facts AS (
    SELECT
        to_char(x.end_on, '%Y-%m') AS period,
        x.owner_id,
        CASE WHEN r.subscription_id IS NOT NULL THEN 1 ELSE 0 END AS num,
        1 AS den
    FROM ending AS x
    LEFT JOIN renewed AS r ON r.subscription_id = x.subscription_id
),
by_entity AS (
    SELECT f.period, o.level, o.entity_id, f.num, f.den
    FROM facts AS f
    JOIN owner_entities AS o ON o.owner_id = f.owner_id
    UNION ALL
    SELECT period, 'company', 'company', num, den FROM facts
)
SELECT
    e.period,
    e.level,
    e.entity_id,
    COALESCE(sum(b.num), 0) AS numerator,
    COALESCE(sum(b.den), 0) AS denominator,
    -- The renewal window of the month's last term closes 30 days after its last day.
    CAST(max(p.month_end) AS INT) + 30 <= CAST($as_of AS INT) AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
