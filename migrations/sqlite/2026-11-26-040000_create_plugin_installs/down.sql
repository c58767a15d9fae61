DROP TABLE plugin_installs;
