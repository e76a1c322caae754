"""The adverse-event clock: reportable incidents, jurisdictions' deadlines in work days, reminders, dossiers (0601)."""
