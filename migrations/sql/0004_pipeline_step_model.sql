-- Steps record which model produced them.
ALTER TABLE pipeline_step ADD COLUMN model text;

-- querykit:down
ALTER TABLE pipeline_step DROP COLUMN model;
