-- set_status() records side_effect events named set_status; `stent status` reads the
-- latest one per execution, so that read walks only those events.
CREATE INDEX events_custom_status ON events (execution_id, id) WHERE kind = 'side_effect' AND name = 'set_status';
