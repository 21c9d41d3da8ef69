-- trial_retention_30d: accounts whose first trial subscription (earliest trial start_on,
-- any product) starts in M and that, on day start_on + 30 (calendar days), have an
-- active subscription of any kind (the first trial itself included), over those
-- accounts; by the account's owner (accounts.owner_id; an account missing from
-- `accounts`, or owned by nobody / someone off the roster, counts at company level only).
-- Readings (WORKED.md §10.6, §10.10): an account counts in neither numerator nor
-- denominator until its day 30 is on or before as_of; a row is final per entity, when
-- M has ended and all of that entity's first trials of M have reached day 30 (an entity
-- with no first trial in M is final once M has ended). Subscription dates are contract
-- terms and are used as they are (no cutoff filter).
WITH first_trial AS (
    SELECT account_id, min(start_on) AS start_on
    FROM subscriptions
    WHERE kind = 'trial'
    GROUP BY account_id
),
trials AS (
    SELECT
        t.account_id,
        to_char(t.start_on, '%Y-%m') AS period,
        CAST(t.start_on AS INT) + 30 AS day30,
        a.owner_id
    FROM first_trial AS t
    LEFT JOIN accounts AS a ON a.account_id = t.account_id
),
retained AS (
    -- Accounts with a subscription of any kind active on their day 30.
    SELECT DISTINCT t.account_id
    FROM trials AS t
    JOIN subscriptions AS s ON s.account_id = t.account_id
    WHERE CAST(s.start_on AS INT) <= t.day30
      AND (s.end_on IS NULL OR t.day30 <= CAST(s.end_on AS INT))
      AND (s.cancelled_on IS NULL OR t.day30 < CAST(s.cancelled_on AS INT))
),
facts AS (
    SELECT
        t.period,
        t.owner_id,
        CASE WHEN t.day30 <= CAST($as_of AS INT) AND r.account_id IS NOT NULL THEN 1 ELSE 0 END AS num,
        CASE WHEN t.day30 <= CAST($as_of AS INT) THEN 1 ELSE 0 END AS den,
        CASE WHEN t.day30 <= CAST($as_of AS INT) THEN 0 ELSE 1 END AS pending
    FROM trials AS t
    LEFT JOIN retained AS r ON r.account_id = t.account_id
),
by_entity AS (
    SELECT f.period, o.level, o.entity_id, f.num, f.den, f.pending
    FROM facts AS f
    JOIN owner_entities AS o ON o.owner_id = f.owner_id
    UNION ALL
    SELECT period, 'company', 'company', num, den, pending FROM facts
)
SELECT
    e.period,
    e.level,
    e.entity_id,
    COALESCE(sum(b.num), 0) AS numerator,
    COALESCE(sum(b.den), 0) AS denominator,
    -- Final per entity: M has ended and none of its first trials of M awaits day 30.
    max(p.month_end) <= $as_of AND COALESCE(sum(b.pending), 0) = 0 AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
