// Package misuse decides whether this PC may log network traffic, and
// switches capture on and off accordingly (G1, G2).
//
// Decide is one pure function — config, PC id and clock in; capture on or
// off, under which case, why, and the next moment the answer changes out.
// Every rule of a misuse case lives there and nowhere else (the case id,
// its end and its scope are config.ValidCaseID, Case.EffectiveEnd and
// Case.Covers). Controller is the only code that starts the capture engine,
// and it starts it only when Decide says so; a test over the call graph
// enforces that. The controller is a state machine: step turns one event
// (a config applied, a wake time reached, the engine ended by itself,
// shutdown) into actions on the Engine, the Store and the audit log, which
// are interfaces it owns so that table tests drive it without root.
//
// It must never import package booking: what it controls is traffic, and
// traffic is kept apart from the booking register (G3).
package misuse
