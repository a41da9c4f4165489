/** Device ids: 1–128 of A–Z a–z 0–9 . _ : - — safe in MQTT topics, URLs, file lines and log fields. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const DEVICE_ID_RULE = "1 to 128 characters from A-Z a-z 0-9 . _ : -";
