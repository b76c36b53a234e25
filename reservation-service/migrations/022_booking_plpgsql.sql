-- Three SQL-language functions that every booking calls, in PL/pgSQL with the same bodies: the
-- planner does not inline them (OUT parameters, or a VOLATILE statement), and PostgreSQL 15 then
-- parses and plans a SQL function's body at every call (~0.05 ms each), where PL/pgSQL keeps
-- the plan of each statement for the session (migration 004 did the same for res_room_zone and
-- res_conflicts).  Same signatures, volatility and results; bench/book_profile.py measures them.

-- Migration 018's res_policy_bounds.
CREATE OR REPLACE FUNCTION res_policy_bounds(p jsonb, override boolean, min_s bigint,
    max_s bigint, OUT lo bigint, OUT hi bigint)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    lo := CASE WHEN NOT coalesce(p ? 'min_duration_minutes', false) THEN min_s
        WHEN override THEN least(min_s, (p->>'min_duration_minutes')::bigint * 60) ELSE 0 END;
    hi := CASE WHEN NOT coalesce(p ? 'max_duration_minutes', false) THEN max_s
        WHEN override THEN greatest(max_s, (p->>'max_duration_minutes')::bigint * 60)
        ELSE 9223372036854775807 END;
END
$$;

-- Migration 006's res_keep_key.
CREATE OR REPLACE FUNCTION res_keep_key(user_id bigint, idem_key text, body text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    UPDATE idempotency_keys i SET status = 201, response = body
    WHERE i.user_id = res_keep_key.user_id AND i.key = idem_key;
END
$$;

-- Migration 019's res_check_in_window: NULLs (as the SQL function's row-less answer gave) when
-- the room does not release unclaimed bookings.
CREATE OR REPLACE FUNCTION res_check_in_window(m rooms, start_time timestamptz,
    end_time timestamptz, OUT check_in_from timestamptz, OUT release_at timestamptz)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF coalesce((m.policies->>'check_in_required')::boolean, false)
        AND m.policies->>'release_after_minutes' IS NOT NULL THEN
        check_in_from := start_time
            - coalesce((m.policies->>'check_in_window_minutes')::int, 0) * interval '1 minute';
        release_at := least(start_time
            + (m.policies->>'release_after_minutes')::int * interval '1 minute', end_time);
    END IF;
END
$$;
