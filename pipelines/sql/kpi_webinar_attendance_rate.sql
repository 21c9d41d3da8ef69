-- webinar_attendance_rate: sum of attendees over sum of registrations, campaign_daily
-- rows of M for campaigns of kind webinar, by the campaign's owner (campaigns.owner_id).
-- Rows of a campaign without an owner, or owned by someone not on the roster, count at
-- company level only. A ratio: kpi_values divides, and gives null over 0 (0/0 when
-- nothing happened). Null counters are 0 (reach_campaign_daily).
WITH facts AS (
    SELECT period, owner_id, attendees AS num, registrations AS den
    FROM reach_campaign_daily
    WHERE kind = 'webinar'
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
