-- The entities a row owned by an employee counts for, besides the company: the owner
-- and the owner's team (as employees.team says today, also for a member who has left).
-- A KPI view joins its rows to this on owner_id, then to `entities` so that only the
-- entities scored that month get a row; rows of nobody, or of someone not on the
-- roster, reach the company level only.
SELECT employee_id AS owner_id, 'employee' AS level, employee_id AS entity_id FROM employees
UNION ALL
SELECT employee_id AS owner_id, 'team' AS level, team AS entity_id FROM employees
