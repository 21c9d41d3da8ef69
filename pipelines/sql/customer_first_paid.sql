-- One row per account with a first paid invoice known at the cutoff: the earliest
-- paid_at among invoices with status `paid` and a paid_at before the cutoff (refunded
-- and void invoices never make a customer; `paid` without paid_at is not paid; a
-- payment stamped at/after the cutoff is unknown). Accounts missing from `accounts`
-- are kept (owner_id and company_size null): they count at company level only and
-- are never small (WORKED.md §10.9).
--   period    business-time month of first_paid_at
--   owner_id  accounts.owner_id (account KPIs belong to the account's owner)
--   is_small  accounts.company_size from 50 to 200 inclusive; false when unknown
WITH first_paid AS (
    SELECT account_id, min(paid_at) AS first_paid_at
    FROM invoices
    WHERE status = 'paid' AND paid_at IS NOT NULL AND paid_at < $cutoff
    GROUP BY account_id
)
SELECT
    fp.account_id,
    fp.first_paid_at,
    to_char(fp.first_paid_at, '%Y-%m') AS period,
    a.owner_id,
    a.company_size,
    COALESCE(a.company_size BETWEEN 50 AND 200, false) AS is_small
FROM first_paid AS fp
LEFT JOIN accounts AS a ON a.account_id = fp.account_id
