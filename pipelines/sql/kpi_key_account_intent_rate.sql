-- key_account_intent_rate: effective leads created in M with company_tier = key whose
-- lead has a deal stage `negotiation` or `won` entered before the cutoff, over all
-- effective leads created in M (not only key-tier ones, as the seed plan defines it),
-- by the lead's owner. A later stage (e.g. lost) does not undo a negotiation.
-- Treated as windowless (WORKED.md §10.7): final once the month has ended.
WITH intent_leads AS (
    SELECT DISTINCT lead_id
    FROM deal_stages
    WHERE stage IN ('negotiation', 'won') AND entered_at < $cutoff
),
facts AS (
    SELECT
        f.period,
        f.owner_id,
        CASE WHEN f.company_tier = 'key' AND i.lead_id IS NOT NULL THEN 1 ELSE 0 END AS num,
        1 AS den
    FROM lead_facts AS f
    LEFT JOIN intent_leads AS i ON i.lead_id = f.lead_id
    WHERE f.is_effective
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
    max(p.month_end) <= $as_of AS is_final
FROM entities AS e
JOIN periods AS p ON p.period = e.period
LEFT JOIN by_entity AS b ON b.period = e.period AND b.level = e.level AND b.entity_id = e.entity_id
GROUP BY e.period, e.level, e.entity_id
