-- Authorization codes number first..last for the public client `bench-spa`, as the login
-- page leaves them (src/auth/authorize/mod.rs `issue_code`): each bound to the client,
-- its redirect URI, the PKCE challenge of the driver's fixed verifier (RFC 7636
-- Appendix B) and one live browser session of the first user of user_set.
--
-- Only a code's SHA-256 is stored; the driver computes code i of set P itself
-- (bench/src/fixtures.rs `authorization_code`): 'ac_' and the base64url of
-- sha256('P-code-i'). Codes here live an hour instead of 60 s, so a batch outlasts its
-- scenario; the exchange judges expiry by the row, as for any code.
--
-- psql variables: prefix, first, last, user_set.
INSERT INTO clients (client_id, name, confidential, grant_types, scopes, redirects,
                     first_party)
VALUES ('bench-spa', 'Benchmark SPA', FALSE, '{authorization_code,refresh_token}',
        '{openid,profile}',
        '{"redirect_uris": ["http://localhost:5555/cb"], "post_logout_redirect_uris": []}',
        TRUE)
ON CONFLICT (client_id) DO NOTHING;

INSERT INTO browser_sessions (id, secret_hash, user_id, auth_time, expires_at)
SELECT md5(:'prefix' || '-browser')::uuid, sha256(convert_to(:'prefix' || '-browser', 'UTF8')),
       md5(:'user_set' || '-0')::uuid, now(), now() + interval '1 day'
ON CONFLICT (id) DO NOTHING;

INSERT INTO authorization_codes (code_hash, client_id, user_id, browser_session_id,
                                 redirect_uri, scope, code_challenge, nonce, auth_time,
                                 expires_at)
SELECT sha256(convert_to('ac_' || translate(rtrim(encode(
           sha256(convert_to(:'prefix' || '-code-' || i, 'UTF8')), 'base64'), '='), '+/', '-_'),
           'UTF8')),
       'bench-spa', md5(:'user_set' || '-0')::uuid, md5(:'prefix' || '-browser')::uuid,
       'http://localhost:5555/cb', 'openid profile',
       'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'bench-nonce', now(),
       now() + interval '1 hour'
  FROM generate_series(:first, :last) AS i;
