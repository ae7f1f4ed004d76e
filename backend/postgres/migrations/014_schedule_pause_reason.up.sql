-- Why a schedule was paused by the scheduler rather than by hand (its next fire time
-- could not be computed); '' for a schedule paused by hand or not paused.
ALTER TABLE schedules ADD COLUMN paused_reason text NOT NULL DEFAULT '';
