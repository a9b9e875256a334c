package agent

var StartSummaryForTest = startSummary

var ParseEventIDForTest = parseEventID
