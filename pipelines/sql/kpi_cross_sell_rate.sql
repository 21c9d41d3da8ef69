-- cross_sell_rate: accounts with an active paid core subscription on M's last day (or
-- as_of, in the current month) that also have an active paid add-on subscription that
-- day, over accounts with an active paid core subscription that day; by the account's
-- owner (accounts.owner_id; an account missing from `accounts`, or owned by nobody /
-- someone off the roster, counts at company level only). Paid subscriptions only;
-- trials never count. Active on day d: start_on <= d, end_on null or d <= end_on,
-- cancelled_on null or d < cancelled_on. Subscription dates are contract terms and are
-- used as they are. Windowless: final once the month has ended.
WITH days AS (
    SELECT period, CASE WHEN month_end <= $as_of THEN month_end ELSE $as_of END AS d
    FROM periods
),
active AS (
    SELECT
        d.period,
        s.account_id,
        max(CASE WHEN s.product_kind = 'core' THEN 1 ELSE 0 END) AS has_core,
        max(CASE WHEN s.product_kind = 'addon' THEN 1 ELSE 0 END) AS has_addon
    FROM days AS d
    JOIN subscriptions AS s
      ON s.start_on <= d.d
     AND (s.end_on IS NULL OR d.d <= s.end_on)
     AND (s.cancelled_on IS NULL OR d.d < s.cancelled_on)
    WHERE s.kind = 'paid'
    GROUP BY d.period, s.account_id
),
facts AS (
    SELECT x.period, a.owner_id, x.has_addon AS num, 1 AS den
    FROM active AS x
    LEFT JOIN accounts AS a ON a.account_id = x.account_id
    WHERE x.has_core = 1
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
    -- A KPI without a window is final once the month has ended.
    max(p.month_end) <= $as_of AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
