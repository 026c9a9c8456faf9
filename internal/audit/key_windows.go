package audit

// keySDDL grants full access to SYSTEM and Administrators only, and blocks
// inheritance from the folder (P), so no other account can read the key.
const keySDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
