// Package notice writes the notice that must hang at the PCs while traffic
// is logged under a misuse case (legal fact 4: patrons are told in
// advance), in Danish and English, as plain text or as a printable HTML
// page.
//
// It shows what a patron needs to know — that traffic is logged because a
// misuse was identified, on which PCs, from when to when, what is recorded,
// who is responsible, how long it is kept and where the rules are — and
// nothing that could point at a person: the case's free-text reason and the
// staff names stay off the notice.
package notice
