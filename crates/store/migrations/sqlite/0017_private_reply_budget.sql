-- Private replies done per Page in the last hour (comment rules count Meta's 750 an hour ahead).
CREATE INDEX comment_actions_done ON comment_actions (inbox_id, action, done_at) WHERE status = 'done';
