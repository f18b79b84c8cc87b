-- Sign-up confirmation tokens are stored as their SHA-256 (attrcache.HashSignUpToken), like
-- session tokens, so that a database dump holds no token that still confirms a sign-up. Raw
-- tokens (32 characters of base64url) written before this migration are hashed in place; users
-- who did not sign up keep none.
UPDATE sso_user
SET sign_up_confirm_token = SHA2(sign_up_confirm_token, 256)
WHERE sign_up_confirm_token IS NOT NULL AND CHAR_LENGTH(sign_up_confirm_token) <> 64;
