ALTER TABLE clients DROP COLUMN browser_mode;
