ALTER TABLE clients DROP COLUMN introspect_any;
