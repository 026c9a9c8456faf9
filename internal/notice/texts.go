package notice

import (
	"fmt"
	"time"

	"github.com/carrel-lib/carrel/internal/config"
)

// lang holds the wording of the notice in one language.
type lang struct {
	title, lead, intro, allPCs, unset                                  string
	pcsLabel, periodLabel, period                                      string
	recordedLabel, metadata, packets, notRecorded, sealedLabel, sealed string
	keptLabel, kept, responsibleLabel, contactLabel, rulesLabel        string
	caseLabel, posted                                                  string
	categories                                                         map[string]string
	months                                                             [12]string
	whenLayout                                                         func(t time.Time, month string) string
	days                                                               func(n int) string
}

func (l lang) category(c string) string {
	if s, ok := l.categories[c]; ok {
		return s
	}
	return l.categories["other"]
}

func (l lang) when(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return l.unset
	}
	t = t.In(loc)
	return l.whenLayout(t, l.months[t.Month()-1])
}

func (l lang) recorded(c config.Case) string {
	if c.Mode == config.ModePackets {
		return fmt.Sprintf(l.packets, c.Snaplen)
	}
	return l.metadata
}

func (l lang) duration(d time.Duration) string {
	n := int((d + 12*time.Hour) / (24 * time.Hour))
	return l.days(n)
}

var texts = map[string]lang{
	"da": {
		title:  "Opslag: Netværkstrafikken på disse pc'er logges",
		lead:   "Biblioteket har konstateret misbrug af sine internet-pc'er (%s).",
		intro:  "Derfor registrerer biblioteket i en afgrænset periode netværkstrafikken på de pc'er, der er nævnt nedenfor. Registreringen er ikke koblet til bookingerne af pc'erne.",
		allPCs: "alle bibliotekets publikums-pc'er",
		unset:  "(ikke angivet)",

		pcsLabel: "Pc'er", periodLabel: "Periode", period: "fra %s til %s",
		recordedLabel: "Hvad registreres",
		metadata:      "Hvilke adresser pc'en forbinder til, hvornår og hvor meget data der sendes, samt navnene på de websteder der slås op (DNS-navn, TLS-servernavn, HTTP-værtsnavn).",
		packets:       "Netværkspakkerne fra pc'en, de første %d bytes af hver pakke, hvilket kan omfatte indhold.",
		notRecorded:   "Hvem der har booket pc'en, registreres ikke sammen med trafikken.",
		sealedLabel:   "Beskyttelse",
		sealed:        "Loggen krypteres, så kun den ansvarlige kan læse den. Den udleveres kun til politiet efter en retskendelse.",
		keptLabel:     "Opbevaring", kept: "Loggen slettes %s efter periodens udløb, medmindre en retskendelse kræver, at den gemmes.",
		responsibleLabel: "Ansvarlig", contactLabel: "Spørgsmål", rulesLabel: "Regler for brug af pc'erne",
		caseLabel: "Sag", posted: "opslaget er hængt op %s",
		categories: map[string]string{
			"illegal-content":   "visning af ulovligt indhold",
			"abuse-of-service":  "misbrug af bibliotekets tjenester",
			"attack-on-network": "angreb på netværket",
			"other":             "andet misbrug",
		},
		months: [12]string{"januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober", "november", "december"},
		whenLayout: func(t time.Time, m string) string {
			return fmt.Sprintf("%d. %s %d kl. %s", t.Day(), m, t.Year(), t.Format("15.04"))
		},
		days: func(n int) string {
			if n == 1 {
				return "1 dag"
			}
			return fmt.Sprintf("%d dage", n)
		},
	},
	"en": {
		title:  "Notice: network traffic on these PCs is being logged",
		lead:   "The library has identified misuse of its internet PCs (%s).",
		intro:  "For a limited period the library therefore records the network traffic of the PCs listed below. The record is not linked to the bookings of the PCs.",
		allPCs: "all of the library's public PCs",
		unset:  "(not set)",

		pcsLabel: "PCs", periodLabel: "Period", period: "from %s to %s",
		recordedLabel: "What is recorded",
		metadata:      "Which addresses the PC connects to, when, and how much data is sent, and the names of the sites looked up (DNS name, TLS server name, HTTP host name).",
		packets:       "The network packets of the PC, the first %d bytes of each, which may include content.",
		notRecorded:   "Who booked the PC is not recorded with the traffic.",
		sealedLabel:   "Protection",
		sealed:        "The log is encrypted so that only the person responsible can read it. It is handed to the police only under a court order.",
		keptLabel:     "Kept for", kept: "The log is deleted %s after the period ends, unless a court order requires it to be kept.",
		responsibleLabel: "Responsible", contactLabel: "Questions", rulesLabel: "Rules for using the PCs",
		caseLabel: "Case", posted: "notice posted %s",
		categories: map[string]string{
			"illegal-content":   "viewing of illegal content",
			"abuse-of-service":  "abuse of the library's services",
			"attack-on-network": "attacks on the network",
			"other":             "other misuse",
		},
		months: [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		whenLayout: func(t time.Time, m string) string {
			return fmt.Sprintf("%d %s %d, %s", t.Day(), m, t.Year(), t.Format("15:04"))
		},
		days: func(n int) string {
			if n == 1 {
				return "1 day"
			}
			return fmt.Sprintf("%d days", n)
		},
	},
}
