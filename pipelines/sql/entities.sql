-- Who gets a KPI row in each month of the window (kpis.md, "Who a row belongs to"):
-- every employee active on at least one day of the month, whatever the role; every
-- team with such a member (teams as employees.team says today); and the company.
WITH active AS (
    SELECT p.period, e.employee_id, e.team
    FROM periods AS p
    JOIN employees AS e
      ON e.active_from <= p.month_end
     AND (e.active_to IS NULL OR e.active_to >= p.month_start)
)
SELECT period, 'employee' AS level, employee_id AS entity_id FROM active
UNION ALL
SELECT DISTINCT period, 'team' AS level, team AS entity_id FROM active
UNION ALL
SELECT period, 'company' AS level, 'company' AS entity_id FROM periods
