WITH guarded AS 
(UPDATE emails SET primary_email=item.primary_email, basket_token=item.basket_token, sfdc_id=item.sfdc_id, first_name=item.first_name, last_name=item.last_name, mailing_country=item.mailing_country, email_format=item.email_format, email_lang=item.email_lang, double_opt_in=item.double_opt_in, has_opted_out_of_email=item.has_opted_out_of_email, unsubscribe_reason=item.unsubscribe_reason, update_timestamp=coalesce(item.update_timestamp, now()) FROM unnest($1::VARCHAR[], $2::VARCHAR[], $3::BOOLEAN[], $4::VARCHAR[], $5::VARCHAR[], $6::VARCHAR[], $7::VARCHAR[], $8::VARCHAR[], $9::VARCHAR[], $10::BOOLEAN[], $11::TEXT[], $12::UUID[], $13::TIMESTAMP WITH TIME ZONE[], $14::VARCHAR[]) AS item(primary_email, basket_token, double_opt_in, sfdc_id, first_name, last_name, mailing_country, email_format, email_lang, has_opted_out_of_email, unsubscribe_reason, email_id, update_timestamp, version) WHERE emails.email_id = item.email_id AND (item.version IS NULL OR item.version = CAST(emails.xmin AS TEXT)) RETURNING emails.email_id AS key), 
write_0 AS 
(DELETE FROM amo USING unnest($15::UUID[]) AS item(email_id) WHERE amo.email_id = item.email_id AND item.email_id IN (SELECT key 
FROM guarded)), 
write_1 AS 
(DELETE FROM fxa USING unnest($16::UUID[]) AS item(email_id) WHERE fxa.email_id = item.email_id AND item.email_id IN (SELECT key 
FROM guarded)), 
write_2 AS 
(DELETE FROM mofo USING unnest($17::UUID[]) AS item(email_id) WHERE mofo.email_id = item.email_id AND item.email_id IN (SELECT key 
FROM guarded)), 
write_3 AS 
(DELETE FROM newsletters USING unnest($18::UUID[], $19::VARCHAR[]) AS item(email_id, name) WHERE newsletters.email_id = item.email_id AND newsletters.name = item.name AND item.email_id IN (SELECT key 
FROM guarded)), 
write_4 AS 
(DELETE FROM waitlists USING unnest($20::UUID[], $21::VARCHAR[]) AS item(email_id, name) WHERE waitlists.email_id = item.email_id AND waitlists.name = item.name AND item.email_id IN (SELECT key 
FROM guarded)), 
write_5 AS 
(INSERT INTO amo (email_id, add_on_ids, display_name, email_opt_in, language, last_login, location, profile_url, "user", user_id, username, create_timestamp, update_timestamp) SELECT item.email_id AS email_id, item.add_on_ids AS add_on_ids, item.display_name AS display_name, item.email_opt_in AS email_opt_in, item.language AS language, item.last_login AS last_login, item.location AS location, item.profile_url AS profile_url, item."user" AS "user", item.user_id AS user_id, item.username AS username, coalesce(item.create_timestamp, now()) AS coalesce_1, coalesce(item.update_timestamp, now()) AS coalesce_2 
FROM unnest($22::UUID[], $23::VARCHAR[], $24::VARCHAR[], $25::BOOLEAN[], $26::VARCHAR[], $27::DATE[], $28::VARCHAR[], $29::VARCHAR[], $30::BOOLEAN[], $31::VARCHAR[], $32::VARCHAR[], $33::TIMESTAMP WITH TIME ZONE[], $34::TIMESTAMP WITH TIME ZONE[]) AS item(email_id, add_on_ids, display_name, email_opt_in, language, last_login, location, profile_url, "user", user_id, username, create_timestamp, update_timestamp) 
WHERE item.email_id IN (SELECT key 
FROM guarded) ON CONFLICT (email_id) DO UPDATE SET add_on_ids = excluded.add_on_ids, display_name = excluded.display_name, email_opt_in = excluded.email_opt_in, language = excluded.language, last_login = excluded.last_login, location = excluded.location, profile_url = excluded.profile_url, "user" = excluded."user", user_id = excluded.user_id, username = excluded.username, update_timestamp = excluded.update_timestamp), 
write_6 AS 
(INSERT INTO fxa (email_id, fxa_id, primary_email, created_date, lang, first_service, account_deleted) SELECT item.email_id AS email_id, item.fxa_id AS fxa_id, item.primary_email AS primary_email, item.created_date AS created_date, item.lang AS lang, item.first_service AS first_service, item.account_deleted AS account_deleted 
FROM unnest($35::UUID[], $36::VARCHAR[], $37::VARCHAR[], $38::VARCHAR[], $39::VARCHAR[], $40::VARCHAR[], $41::BOOLEAN[]) AS item(email_id, fxa_id, primary_email, created_date, lang, first_service, account_deleted) 
WHERE item.email_id IN (SELECT key 
FROM guarded) ON CONFLICT (email_id) DO UPDATE SET fxa_id = excluded.fxa_id, primary_email = excluded.primary_email, created_date = excluded.created_date, lang = excluded.lang, first_service = excluded.first_service, account_deleted = excluded.account_deleted, update_timestamp = now()), 
write_7 AS 
(INSERT INTO mofo (email_id, mofo_email_id, mofo_contact_id, mofo_relevant) SELECT item.email_id AS email_id, item.mofo_email_id AS mofo_email_id, item.mofo_contact_id AS mofo_contact_id, item.mofo_relevant AS mofo_relevant 
FROM unnest($42::UUID[], $43::VARCHAR[], $44::VARCHAR[], $45::BOOLEAN[]) AS item(email_id, mofo_email_id, mofo_contact_id, mofo_relevant) 
WHERE item.email_id IN (SELECT key 
FROM guarded) ON CONFLICT (email_id) DO UPDATE SET mofo_email_id = excluded.mofo_email_id, mofo_contact_id = excluded.mofo_contact_id, mofo_relevant = excluded.mofo_relevant, update_timestamp = now()), 
write_8 AS 
(INSERT INTO newsletters (email_id, name, subscribed, format, lang, source, unsub_reason, create_timestamp, update_timestamp) SELECT item.email_id AS email_id, item.name AS name, item.subscribed AS subscribed, item.format AS format, item.lang AS lang, item.source AS source, item.unsub_reason AS unsub_reason, coalesce(item.create_timestamp, now()) AS coalesce_3, coalesce(item.update_timestamp, now()) AS coalesce_4 
FROM unnest($46::UUID[], $47::VARCHAR[], $48::BOOLEAN[], $49::VARCHAR[], $50::VARCHAR[], $51::TEXT[], $52::TEXT[], $53::TIMESTAMP WITH TIME ZONE[], $54::TIMESTAMP WITH TIME ZONE[]) AS item(email_id, name, subscribed, format, lang, source, unsub_reason, create_timestamp, update_timestamp) 
WHERE item.email_id IN (SELECT key 
FROM guarded) ON CONFLICT (email_id, name) DO UPDATE SET subscribed = excluded.subscribed, format = excluded.format, lang = excluded.lang, source = excluded.source, unsub_reason = excluded.unsub_reason, update_timestamp = excluded.update_timestamp), 
write_9 AS 
(INSERT INTO waitlists (email_id, name, source, fields, subscribed, unsub_reason, create_timestamp, update_timestamp) SELECT item.email_id AS email_id, item.name AS name, item.source AS source, item.fields AS fields, item.subscribed AS subscribed, item.unsub_reason AS unsub_reason, coalesce(item.create_timestamp, now()) AS coalesce_5, coalesce(item.update_timestamp, now()) AS coalesce_6 
FROM unnest($55::UUID[], $56::VARCHAR[], $57::TEXT[], $58::JSONB[], $59::BOOLEAN[], $60::TEXT[], $61::TIMESTAMP WITH TIME ZONE[], $62::TIMESTAMP WITH TIME ZONE[]) AS item(email_id, name, source, fields, subscribed, unsub_reason, create_timestamp, update_timestamp) 
WHERE item.email_id IN (SELECT key 
FROM guarded) ON CONFLICT (email_id, name) DO UPDATE SET source = excluded.source, subscribed = excluded.subscribed, unsub_reason = excluded.unsub_reason, fields = excluded.fields, update_timestamp = excluded.update_timestamp), 
write_10 AS 
(INSERT INTO pending_acoustic (email_id, operation, deletion, create_timestamp, update_timestamp) SELECT item.email_id AS email_id, item.operation AS operation, item.deletion AS deletion, item.now AS now, item.now AS now__1 
FROM unnest($63::UUID[], $64::VARCHAR[], $65::JSONB[], $66::TIMESTAMP WITH TIME ZONE[]) AS item(email_id, operation, deletion, now) 
WHERE item.email_id IN (SELECT key 
FROM guarded) ON CONFLICT (email_id) DO UPDATE SET retry = $67::INTEGER, last_error = $68::VARCHAR, version = (pending_acoustic.version + $69::BIGINT), operation = excluded.operation, deletion = excluded.deletion, next_attempt_at = $70::TIMESTAMP WITH TIME ZONE, update_timestamp = excluded.update_timestamp)
 SELECT guarded.key 
FROM guarded
