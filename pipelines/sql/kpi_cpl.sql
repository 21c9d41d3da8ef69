-- cpl: spend of M over effective leads created in M (kpis.md, result KPIs; WORKED.md
-- §10 reading 1). Employee and team: owned through campaigns.owner_id only, i.e. the
-- spend of the campaigns they own over the effective leads *of those campaigns*,
-- whoever owns the lead (a lead with no owner or another owner still counts for its
-- campaign's owner). Company: all spend (channel-wide spend, campaigns without an owner
-- or missing from `campaigns`, owners not on the roster) over all effective leads.
-- Spend is by its business day; spend rows after as_of are not known. A ratio:
-- kpi_values divides, null over 0 effective leads; zero spend with effective leads is 0.
WITH facts AS (
    SELECT to_char(s.day, '%Y-%m') AS period, c.owner_id, s.amount AS num, 0 AS den
    FROM spend AS s
    LEFT JOIN campaigns AS c ON c.campaign_id = s.campaign_id
    WHERE s.day <= $as_of
    UNION ALL
    SELECT period, campaign_owner_id AS owner_id, CAST(0 AS DECIMAL(18, 2)) AS num, 1 AS den
    FROM lead_facts
    WHERE is_effective
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
