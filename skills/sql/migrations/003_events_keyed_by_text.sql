-- Version 3 keys events by their text: a note logged twice (a stage redone after a crash)
-- is kept once, with its first time.

ALTER TABLE events RENAME TO events_v2;
CREATE TABLE events (ts TIMESTAMP NOT NULL DEFAULT current_timestamp, round INTEGER NOT NULL,
                     stage VARCHAR NOT NULL, message VARCHAR NOT NULL, PRIMARY KEY (round, stage, message));
INSERT INTO events SELECT min(ts), round, stage, message FROM events_v2 GROUP BY round, stage, message;
DROP TABLE events_v2;
